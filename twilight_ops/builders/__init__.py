"""Pure argv builders, split by concern.  No I/O here.

    layout.py   Layout: absolute remote paths for one tvps
    compose.py  docker compose / docker (tvps)
    files.py    mkdir, the lock dir (tvps)
    git.py      the local twilight-drive repo (the operator's machine)
    hermes.py   install-skill.sh and the Hermes CLI (the operator's machine)

Paths given to remote builders are absolute (the Layout holds them expanded);
every value is one argv element, rendered later with shlex.join.
"""
