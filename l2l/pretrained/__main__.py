import sys

from l2l.pretrained.maintainer import main

sys.exit(main())
