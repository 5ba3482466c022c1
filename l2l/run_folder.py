"""A meta-training run's folder, <checkpoint_root>/<run key>/, apart from the training it records.

    ckpt-N.index, ckpt-N.data-*   the last two checkpoints (tf.train.CheckpointManager) of the run's state
    checkpoint                    TF's index of them
    run.json                      a readable mirror: key, description, the sessions that trained it, per-epoch history
    snapshots/epochNNNNNN.weights.h5   the weights every snapshot_every epochs (MetaConfig)

RunFolder opens a folder for a trainer: it restores the newest readable
checkpoint (falling back to an older one when the newest is damaged, and
reading checkpoints written before variables were added), holds the folder
with a lock while a process trains, and writes checkpoints, run.json and
snapshots whole before renaming them into place. inspect_run and
snapshots_in read a folder without changing it.
"""

import glob
import json
import os
import re

try:  # the run folder's lock (RunFolder.hold); POSIX only, and without it a run trains unlocked as before
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

import tensorflow as tf

from l2l import learned_optimizer

# Variables added to the checkpoint after runs already existed: a checkpoint
# without them is an older run's, restored as it is (history from run.json).
# A checkpoint without valid_rng validates on a stream restarted at the resume, as the code that wrote it did.
ADDED_LATER = ("history", "description", "initial_valid", "stage", "stale", "valid_rng")
CORE = ("weights", "best", "optimizer_state", "epoch", "rng")  # what every checkpoint ever written holds


def checkpoints_on_disk(directory):
    """The prefixes of every ckpt-N.index in a run folder, readable or not."""
    return [p[: -len(".index")] for p in glob.glob(os.path.join(directory, "ckpt-*.index"))]


def checkpoint_number(prefix):
    return int(re.search(r"ckpt-(\d+)$", prefix).group(1))


def snapshots_in(run_folder):
    """epoch -> path of every snapshot in a run's folder (<root>/<key>), read without opening its checkpoints,
    so a chapter can read a run another process is training."""
    folder = os.path.join(run_folder, "snapshots")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return {int(n[5:11]): os.path.join(folder, n) for n in names if n.startswith("epoch") and n.endswith(".weights.h5")}


def inspect_run(run_folder):
    """What a run folder holds, read only (nothing is created, moved or locked, so a run another process trains can be
    looked at): {"exists", "trained" (epochs of the newest readable checkpoint; 0: none), "checkpoints" (epoch -> None
    if readable, else why not, newest first), "history" (epochs run.json records; None: missing or unreadable),
    "snapshots" (epoch -> path)}. A checkpoint counts as readable when every tensor in it reads back (TF checks each one's
    checksum), as RunFolder's restore would need."""
    report = {"exists": os.path.isdir(run_folder), "trained": 0, "checkpoints": {}, "history": None, "snapshots": snapshots_in(run_folder)}
    try:
        with open(os.path.join(run_folder, "run.json")) as f:
            report["history"] = len(json.load(f)["history"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for prefix in sorted(checkpoints_on_disk(run_folder), key=checkpoint_number, reverse=True):
        try:
            reader = tf.train.load_checkpoint(prefix)
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
            epoch = int(reader.get_tensor("state/epoch/.ATTRIBUTES/VARIABLE_VALUE"))
            report["checkpoints"][checkpoint_number(prefix)] = None
            report["trained"] = max(report["trained"], epoch)
        except Exception as error:  # TF raises DataLossError, OpError, NotFoundError... for a damaged or partial file
            report["checkpoints"][checkpoint_number(prefix)] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}" if str(error) else type(error).__name__
    return report


class RunFolder:
    """The folder of one run: `state` (a tf.Module with the variables of l2l.meta's _State) is restored from it on
    opening and saved into it; `history` is the per-epoch history the restored checkpoint holds."""

    def __init__(self, directory, state, description, key, epochs):
        self.directory, self.state, self.description, self.key, self.epochs = directory, state, description, key, epochs
        self.open()

    def open(self):
        from l2l.provenance import provenance

        os.makedirs(self.directory, exist_ok=True)
        self.log_later = []  # what opening the checkpoints found, said when the run starts
        self.run_file = os.path.join(self.directory, "run.json")
        saved = self.read_run_file()
        self.sessions = saved.get("sessions", []) + [provenance()]  # every process that trained this run, in order
        if saved.get("config", self.description) != self.description:
            raise ValueError(f"{self.directory!r} holds checkpoints of a different run ({saved['config']}), though its key matches; delete that folder to start over")
        self.manager = tf.train.CheckpointManager(tf.train.Checkpoint(state=self.state), self.directory, max_to_keep=2)
        index = os.path.join(self.directory, "checkpoint")
        if os.path.exists(index) and not self.manager.checkpoints and self._candidates():
            # TF ignores an unparsable index and would list no checkpoint: keep it aside, find them by name.
            os.replace(index, index + ".unreadable")
            self.log_later.append(f"checkpoint index {index!r} unreadable; kept as checkpoint.unreadable, checkpoints found by name")
        self.history = []
        self.restored_from = self._restore(saved)
        self._newest_known = self._newest_on_disk()

    def read_run_file(self):
        """run.json's content, or {} when it is missing or unreadable (the checkpoint holds what matters)."""
        if not os.path.exists(self.run_file):
            return {}
        try:
            with open(self.run_file) as f:
                saved = json.load(f)
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
            return saved
        except (ValueError, OSError) as error:
            self.log_later.append(f"{self.run_file!r} unreadable ({error}); it is rewritten from the checkpoint at the next save")
            return {}

    def _candidates(self):
        """Checkpoint prefixes, newest first: those the index lists, and any ckpt-N.index on disk it does not."""
        return sorted(set(self.manager.checkpoints) | set(checkpoints_on_disk(self.directory)), key=checkpoint_number, reverse=True)

    def _newest_on_disk(self):
        """The highest N of a ckpt-N.index in the run folder (-1: none), damaged or not."""
        return max(map(checkpoint_number, checkpoints_on_disk(self.directory)), default=-1)

    def hold(self, log):
        """Takes the folder for this process while it trains, by an advisory lock on the folder, and returns its
        descriptor (None without fcntl). Two processes training one run at once would each overwrite the other's
        checkpoints: the second waits until the first ends (two sweep workers may draw the same settings). If another
        process trained the run further after this folder was opened, it is opened again, so that training resumes
        from the newest checkpoint instead of overwriting it with a stale state."""
        if fcntl is None:
            return None
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"run folder {self.directory!r} is being trained by another process; waiting until it ends, then resuming from its checkpoint")
            fcntl.flock(fd, fcntl.LOCK_EX)
        if self._newest_on_disk() > self._newest_known:
            known = self._newest_known
            try:
                self.open()
            except BaseException:
                os.close(fd)  # the folder's errors reach the caller with the lock released
                raise
            self.log_later.insert(0, f"opened again: another process trained the run after this trainer opened it at ckpt-{known}")
        return fd

    def _restore(self, saved):
        """Restores the newest readable checkpoint; returns its path (None: a fresh run)."""
        tried = []
        for prefix in self._candidates():
            try:
                self._restore_one(prefix)
                description = self.state.description.numpy().decode()
                if description and json.loads(description) != self.description:
                    raise ValueError("it holds another run's description")
            except Exception as error:  # TF raises OpError, IndexError, ValueError... for a damaged file
                tried.append(f"{os.path.basename(prefix)} ({type(error).__name__}: {str(error).splitlines()[0][:120]})")
                continue
            if tried:
                self.log_later.append(f"unreadable checkpoints {tried}; resumed from the older {os.path.basename(prefix)}")
            self._after_restore(saved)
            return prefix
        if tried:
            raise ValueError(f"no checkpoint in {self.directory!r} can be read (tried {tried}); delete that folder to start the run over")
        return None

    def _restore_one(self, prefix):
        status = self.manager.checkpoint.restore(prefix)
        try:
            status.assert_existing_objects_matched()
        except AssertionError:
            names = {name for name, _ in tf.train.list_variables(prefix)}
            missing = [v for v in ADDED_LATER if not any(n.startswith(f"state/{v}/") for n in names)]
            core = all(any(n.startswith(f"state/{v}/") for n in names) for v in CORE)
            if not (missing and core):
                raise
            status.expect_partial()

    def _after_restore(self, saved):
        trained = int(self.state.epoch.numpy())
        if trained > self.epochs:
            raise ValueError(
                f"the run in {self.directory!r} has already trained {trained} epochs, more than the {self.epochs} asked for; "
                f"ask for epochs >= {trained} to reuse it, or give another checkpoint root to train a shorter run from scratch"
            )
        history = json.loads(self.state.history.numpy().decode())
        if len(history) < trained:  # a checkpoint from before the history travelled inside it
            history = saved.get("history", [])
        if len(history) < trained:
            raise ValueError(f"the run in {self.directory!r} has trained {trained} epochs but its history records {len(history)}; delete that folder to start the run over")
        self.history = history[:trained]

    def save(self, history):
        """A checkpoint of the state at its epoch, then run.json (written whole, then renamed)."""
        self.state.history.assign(json.dumps(history))
        self.state.description.assign(json.dumps(self.description))
        self.manager.save(checkpoint_number=int(self.state.epoch.numpy()))
        tmp = self.run_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"key": self.key, "config": self.description, "sessions": self.sessions, "history": history}, f)
        os.replace(tmp, self.run_file)
        self.history = list(history)
        self._newest_known = max(self._newest_known, int(self.state.epoch.numpy()))

    def snapshot(self, epoch, lstm_config):
        """The state's weights at this epoch, for curves over meta-training (written whole, then renamed)."""
        folder = os.path.join(self.directory, "snapshots")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"epoch{epoch:06d}.weights.h5")
        learned_optimizer.save_weights(path + ".tmp", {k: v.numpy() for k, v in self.state.weights.items()}, lstm_config, epoch=epoch, run_key=self.key)
        os.replace(path + ".tmp", path)

    def snapshots(self):
        """epoch -> path of every snapshot this run has written."""
        return snapshots_in(self.directory)
