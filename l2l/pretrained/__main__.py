import sys

from l2l.pretrained import main

sys.exit(main())
