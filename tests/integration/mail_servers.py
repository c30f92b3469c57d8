"""Real mail servers for email channel tests: Debian's postfix (SMTP) delivering the test
domain into Maildirs that dovecot serves over IMAP, both on 127.0.0.1 with free high ports in a
temporary directory, nothing touching the system's own mail setup.

Postfix runs as a second instance (`postfix -c <dir>`) with its own queue and data
directories; mail for the `MAILBOXES` at `example.com` is
delivered by postfix's `virtual` agent into `<root>/mail/example.com/<user>/`, which dovecot
serves (every mailbox's password is `PASSWORD`); any other address at the domain is refused at
RCPT (550). Both need root (postfix's master and dovecot drop privileges to their own users);
`mail_servers()` skips the test when that or a binary is missing."""

from __future__ import annotations

import imaplib
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests.processes import free_port

DOMAIN = "example.com"
PASSWORD = "mail-test-password"
START_TIMEOUT = 30.0
BINARIES = ("postfix", "dovecot", "postconf")

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/postfix/queue
data_directory = {root}/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = $myhostname ESMTP test
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
maillog_file_prefixes = {root}
maillog_file = {root}/postfix/maillog
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/postfix/virtual_mailboxes
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
virtual_transport = virtual
"""

MASTER_CF = """\
127.0.0.1:{smtp_port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

MAILBOXES = (
    *(f"support{n}" for n in ("", 2, 3, 4)),
    *(f"customer{n}" for n in ("", 2, 3, 4, 5, 6)),
)
"""The mailboxes at `DOMAIN` (postfix's virtual agent takes no pattern, so they are listed)."""

DOVECOT_CONF = """\
base_dir = {root}/dovecot/run
state_dir = {root}/dovecot/state
instance_name = deputy-test-{imap_port}
log_path = {root}/dovecot/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%d/%n
first_valid_uid = 1
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%d/%n allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait(port: int, up: bool, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _accepts(port) is up:
            return
        time.sleep(0.1)
    detail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise AssertionError(f"{what} did not {'start' if up else 'stop'}:\n{detail}")


@dataclass
class MailServers:
    root: Path
    smtp_port: int
    imap_port: int
    domain: str = DOMAIN
    password: str = PASSWORD
    _conf: Path = field(init=False)

    def __post_init__(self) -> None:
        self._conf = self.root / "postfix" / "conf"

    # ---- lifecycle ----

    def _run(self, *command: str, check: bool = True) -> None:
        """Run a server's control command; output goes to a file (the daemons they start
        keep the descriptors open, so a pipe would never reach end of file)."""
        with (self.root / "commands.log").open("ab") as log:
            subprocess.run(command, check=check, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def _postfix(self, command: str) -> None:
        self._run("postfix", "-c", str(self._conf), command)

    def start_smtp(self) -> None:
        self._postfix("start")
        _wait(self.smtp_port, True, "postfix", self.root / "postfix" / "maillog")

    def stop_smtp(self) -> None:
        self._postfix("stop")
        _wait(self.smtp_port, False, "postfix", self.root / "postfix" / "maillog")

    def start_imap(self) -> None:
        self._run("dovecot", "-c", str(self.root / "dovecot" / "dovecot.conf"))
        _wait(self.imap_port, True, "dovecot", self.root / "dovecot" / "dovecot.log")

    def stop(self) -> None:
        if _accepts(self.smtp_port):
            self._run("postfix", "-c", str(self._conf), "stop", check=False)
        if (self.root / "dovecot" / "run" / "master.pid").exists():
            self._run(
                "dovecot", "-c", str(self.root / "dovecot" / "dovecot.conf"), "stop", check=False
            )
        _wait(self.smtp_port, False, "postfix", self.root / "postfix" / "maillog")
        _wait(self.imap_port, False, "dovecot", self.root / "dovecot" / "dovecot.log")

    # ---- the customer's side ----

    def send(self, message: EmailMessage, *, mail_from: str | None = None) -> None:
        """Submit a message to postfix (as a customer's mail server would relay it)."""
        with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="client.test") as client:
            client.send_message(message, from_addr=mail_from)

    @contextmanager
    def imap(self, address: str) -> Iterator[imaplib.IMAP4]:
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        try:
            client.login(address, self.password)
            client.select("INBOX")
            yield client
        finally:
            client.logout()

    def messages(self, address: str) -> list[EmailMessage]:
        """Every message in a mailbox, oldest first (read without flagging them seen)."""
        found: list[EmailMessage] = []
        with self.imap(address) as client:
            _status, data = client.uid("SEARCH", "ALL")
            for uid in data[0].split():
                _status, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
                raw = next(p[1] for p in parts if isinstance(p, tuple))
                parsed = BytesParser(policy=policy.default).parsebytes(raw)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
        return found

    def unseen(self, address: str) -> int:
        with self.imap(address) as client:
            _status, data = client.uid("SEARCH", "UNSEEN")
            return len(data[0].split())

    def wait_for_messages(
        self, address: str, count: int, timeout: float = 60.0
    ) -> list[EmailMessage]:
        """The mailbox's messages once there are at least `count` (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(address)
            if len(found) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(found) >= count, (
            f"{address} has {len(found)} message(s), expected {count}; postfix log:\n"
            + self.maillog()[-3000:]
        )
        return found

    def maillog(self) -> str:
        log = self.root / "postfix" / "maillog"
        return log.read_text(errors="replace") if log.exists() else ""


def _write(root: Path, smtp_port: int, imap_port: int) -> None:
    import grp
    import pwd

    mail_uid, mail_gid = pwd.getpwnam("mail").pw_uid, grp.getgrnam("mail").gr_gid
    for folder in ("postfix/conf", "postfix/queue", "postfix/data", "dovecot/run", "mail"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for folder in (root, root / "postfix", root / "dovecot"):
        folder.chmod(0o755)
    shutil.chown(root / "postfix" / "data", "postfix")
    os.chown(root / "mail", mail_uid, mail_gid)
    values = {
        "root": root,
        "domain": DOMAIN,
        "uid": mail_uid,
        "gid": mail_gid,
        "smtp_port": smtp_port,
        "imap_port": imap_port,
        "password": PASSWORD,
    }
    (root / "postfix" / "conf" / "main.cf").write_text(MAIN_CF.format(**values))
    (root / "postfix" / "conf" / "master.cf").write_text(MASTER_CF.format(**values))
    (root / "postfix" / "virtual_mailboxes").write_text(
        "".join(f"{user}@{DOMAIN} {DOMAIN}/{user}/\n" for user in MAILBOXES)
    )
    (root / "dovecot" / "dovecot.conf").write_text(DOVECOT_CONF.format(**values))


@contextmanager
def mail_servers() -> Iterator[MailServers]:
    """Postfix and dovecot running for the duration (skips when they cannot run here)."""
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages postfix, dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("postfix and dovecot test instances need root")
    root = Path(tempfile.mkdtemp(prefix="deputy-mail-"))
    servers = MailServers(root=root, smtp_port=free_port(), imap_port=free_port())
    try:
        _write(root, servers.smtp_port, servers.imap_port)
        servers.start_imap()
        servers.start_smtp()
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)
