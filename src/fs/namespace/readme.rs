//! The text of `.cairn/README`: what the control plane's files are and how to use them.

pub(super) const README_TEXT: &str = "\
cairn control plane

Write one request per line into a control file; read the reply (job=ID or the error)
back from the same handle when you open it read-write.
  echo 'add name=NAME path=/abs/path [path=..] [exclude=GLOB]' > ctl/instance
       [before=CMD] [after=CMD] [restore-before=CMD] [restore-after=CMD] [hook-timeout=S]
       run CMD with /bin/sh -c around snapshots and restores (docs/CONTROL.md, Hooks)
       [log=GLOB].. [log-every=S] [log-pushers=USER,..] archive log files (Logs)
  echo 'remove name=NAME'                                        > ctl/instance
  echo 'instance=NAME [name=LABEL] [stdin=FILE]'                 > ctl/snapshot
       stdin=FILE: write the stream into jobs/ID/input, close it, then
       echo 'end job=ID [bytes=N]' > ctl/stdin (no marker: the job fails)
  echo 'instance=NAME point=POINT|latest target=/abs [include=GLOB].. [mode=new|in-place]' > ctl/restore
       [skip-damaged=true] restores every intact file and names the damaged ones;
       [delete-excluded=true] (in-place) also deletes what the backup's excludes kept out
       at=TIME instead of point=: the instance as it was at that second (into target=)
  echo 'archive instance=NAME' (or range instance=NAME)         > ctl/log
       (`cairn log push NAME FILE` sends push instance=NAME name=F bytes=N, then the bytes)
  echo '[instance=NAME] [point=POINT] [read-data=true]'          > ctl/verify
  echo 'instance=NAME [point=P] [against=/abs] [ignore=GLOB].. [checksum=false]' > ctl/check
       [threads=N] [bandwidth=MB]; other=P2 compares two points; the differences
       are JSON lines in jobs/ID/differences (docs/CONTROL.md, Check)
  echo 'job=ID'                                                  > ctl/cancel
  echo 'instance=NAME point=POINT|latest [point=..] [manual=true]' > ctl/forget
  echo '[dry-run=true] [grace-hours=N] [break-lease=true]'       > ctl/prune
  echo '[dry-run=true]'                                          > ctl/repair
       (damaged lists the points repair marked damaged, JSON lines)
  echo 'create name=P times=03:00,15:00 weekdays=mon,fri keep-days=7' > ctl/policy
  echo 'bind name=P instance=NAME'                               > ctl/policy
  (also update, delete, enable, disable, unbind, run-now, settings; policies/P shows P)
A request may also be one JSON object, e.g. {\"instance\":\"db\",\"name\":\"before-upgrade\"}.
jobs/ID/status is JSON (state, progress, error); jobs/ID/log is text; `rm -r jobs/ID`
deletes a finished job; events is the audit log (JSON lines: time, kind, uid, request,
outcome); stats shows repository figures.
Beside its points, an instance's directory has `latest` (a symlink) and, when it archives
logs, `logs/` (each log file as archived: restore_command = 'cp MNT/pg/logs/%f %p') and
`restorable` (the range of seconds, as `range` in ctl/log); the names `latest`, `logs`,
`restorable` and `@...` are reserved (point names start with a digit).
`INSTANCE/@2026-12-01T103015Z/` (or @RFC3339) is the state at that second, looked up by
name only (not listed); a time that cannot be restored is ENOENT, the reason in the log.
docs/CONTROL.md has the rest.
";
