"""Hand-written conformance cases: one rule each. The golden answer of each is BuildKit's
(refresh.py); nothing here says what the result should be."""
from __future__ import annotations

from model import EPOCH, Case, D, F, H, L, Tar  # noqa: F401

HAND_CASES = [
    Case("copy-file-onto-existing-dir-no-slash", "FROM conformance-base\nRUN mkdir /app\nCOPY a.txt /app\n",
         {"a.txt": "hello\n"}, rule="a file COPY'd onto an existing directory without a trailing slash goes inside it"),
    Case("copy-into-tmp-keeps-sticky", "FROM conformance-base\nCOPY a.txt /tmp/a.txt\n",
         {"a.txt": "hello\n"}, rule="COPY keeps the owner and mode of existing parents (/tmp 1777)"),
    Case("copy-into-user-home", "FROM conformance-base\nCOPY --chown=user:user a.txt /home/user/a.txt\nUSER user\nCMD [\"sh\", \"-c\", \"touch /home/user/new && ls -ln /home/user\"]\n",
         {"a.txt": "hello\n"}, rule="COPY into a 0700 home owned by a user keeps the home's owner"),
    Case("copy-wildcard-one-file-onto-name", "FROM conformance-base\nCOPY build/*.jar /app.jar\n",
         {"build/x.jar": "jar\n", "build/readme": "no\n"}, rule="a wildcard matching one file onto a plain name is that file"),
    Case("workdir-creates-dir", "FROM conformance-base\nWORKDIR /work/dir\n",
         {}, rule="WORKDIR creates its directory"),
    Case("workdir-as-user", "FROM conformance-base\nUSER user\nWORKDIR /home/user/app\nWORKDIR sub\n",
         {}, rule="WORKDIR creates its directory owned by the current USER"),
    Case("run-true-twice", "FROM conformance-base\nRUN true\nRUN true\nRUN echo hi > /x\n",
         {}, rule="RUN that changes nothing, twice in a row"),
    Case("copy-then-add-same-file", "FROM conformance-base\nCOPY a.txt /a.txt\nADD a.txt /a.txt\nRUN cat /a.txt\n",
         {"a.txt": "same\n"}, rule="two identical layers in one image"),
    Case("copy-dir-chown-creates", "FROM conformance-base\nCOPY --chown=1000:1000 src /dest/deep\n",
         {"src/a": "a\n", "src/sub/b": "b\n"}, rule="--chown applies to the directories COPY creates for a directory source"),
    Case("env-path-without-base-path", "FROM conformance-base\nENV PATH=/opt/bin:$PATH\nRUN echo $PATH > /path.txt\n",
         {}, rule="a base without PATH gets the default PATH"),
]
