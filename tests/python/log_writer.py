"""An application writing a log file the way real ones do, for the filelog tests.

Usage: log_writer.py DIR LINES PER_ROTATION

Appends `seq NNNNNNN <padding>` lines to DIR/app.log at about 2000 lines/s. Every PER_ROTATION
lines it rotates, alternating between rename rotation (app.log -> app.log.1, as logrotate's
default) and copy-truncate (copy to app.log.1, truncate app.log in place, as logrotate's
`copytruncate`), shifting older generations up to app.log.3 and deleting the oldest. Deletion
only ever hits a file that stopped growing three rotations ago. Prints "done" at the end.
"""

import os
import shutil
import sys
import time

d, total, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = os.path.join(d, "app.log")


def shift():
    oldest = app + ".3"
    if os.path.exists(oldest):
        os.remove(oldest)
    for g in (2, 1):
        if os.path.exists(f"{app}.{g}"):
            os.rename(f"{app}.{g}", f"{app}.{g + 1}")


rotations = 0
for i in range(total):
    with open(app, "a") as f:
        f.write(f"seq {i:07d} " + "x" * 40 + "\n")
    if i % per == per - 1:
        shift()
        if rotations % 2 == 0:
            os.rename(app, app + ".1")
        else:
            shutil.copyfile(app, app + ".1")
            with open(app, "r+") as f:
                f.truncate(0)
        rotations += 1
    if i % 20 == 19:
        time.sleep(0.01)
print("done", flush=True)
