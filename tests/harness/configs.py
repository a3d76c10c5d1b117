"""Configuration files of the private Dovecot and Postfix instances.

Each function returns the text of one file; MailServer writes them under its temporary
directory. Placeholders are filled from a plain dict so the templates stay readable.
"""

# What Dovecot advertises after login under each profile (None: Dovecot's own list).
# Before login Dovecot adds STARTTLS (when TLS is possible) and AUTH=... itself.
CAPABILITY_PROFILES = {
    "full": None,
    # Gmail: CONDSTORE without QRESYNC, no NOTIFY.
    "gmail": "IMAP4rev1 UNSELECT IDLE NAMESPACE ID CHILDREN UIDPLUS ENABLE MOVE CONDSTORE "
             "ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE",
    # Office 365: no CONDSTORE, QRESYNC, NOTIFY, SPECIAL-USE, LIST-STATUS or COMPRESS.
    "o365": "IMAP4 IMAP4rev1 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+ MOVE",
    # The bare minimum a server can offer.
    "imap4rev1": "IMAP4rev1 LOGIN-REFERRALS",
}

# SASL mechanisms offered (IMAP, POP3 and SMTP AUTH all use Dovecot's list).
AUTH_MECHANISMS = {
    "full": "plain login xoauth2 oauthbearer",
    "gmail": "plain login xoauth2 oauthbearer",
    "o365": "plain login xoauth2",
    "imap4rev1": "plain",
}

# Profiles whose real counterpart offers COMPRESS=DEFLATE (when compress is on).
COMPRESS_PROFILES = ("full", "gmail")

SPECIAL_USE_FOLDERS = (
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
)


def render(template, values):
    for key, value in values.items():
        template = template.replace("@" + key + "@", str(value))
    return template


DOVECOT_CONF = """\
# Private Dovecot of the mailferry test harness. Generated; see tests/harness/configs.py.
instance_name = @INSTANCE@
base_dir = @ROOT@/run/dovecot
state_dir = @ROOT@/state
log_path = @ROOT@/log/dovecot.log
info_log_path = @ROOT@/log/dovecot.log
debug_log_path = @ROOT@/log/dovecot.log
verbose_proctitle = yes
import_environment = TZ CORE_OUTOFMEM CORE_ERROR

protocols = imap pop3 lmtp
listen = 127.0.0.1
hostname = localhost
postmaster_address = postmaster@@DOMAIN@

ssl = yes
ssl_cert = <@ROOT@/tls/server.crt
ssl_key = <@ROOT@/tls/server.key

# Tests use tls = "none" against loopback too.
disable_plaintext_auth = no
auth_mechanisms = @MECHANISMS@
# Dovecot 2.3 still queues a failure for up to 0.5 s with this; the default is 2 s.
auth_failure_delay = 0
auth_cache_size = 0

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n @ROOT@/passwd
  mechanisms = plain login
}
# OAuth2 tokens: Dovecot 2.3's XOAUTH2/OAUTHBEARER hand the bearer token to the passdb as
# the password, so a second passwd-file restricted to those mechanisms is a static token
# store (and a token is no password for PLAIN/LOGIN, nor the reverse).
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n @ROOT@/tokens
  mechanisms = xoauth2 oauthbearer
}
userdb {
  driver = passwd-file
  args = username_format=%n @ROOT@/passwd
  default_fields = uid=@MAIL_UID@ gid=@MAIL_GID@ home=@ROOT@/mail/%n
}

# Dovecot refuses uid 0 for mail; mail belongs to the unprivileged `mail` user.
first_valid_uid = @MAIL_UID@
first_valid_gid = @MAIL_GID@

# LAYOUT=fs: "A/B" is the directory A/B, and dots are allowed in folder names.
mail_location = maildir:~/Maildir:LAYOUT=fs:INBOX=~/Maildir/INBOX
mail_fsync = never
mail_max_userip_connections = 200
mail_plugins = $mail_plugins notify

namespace inbox {
  inbox = yes
  separator = /
  prefix =
@SPECIAL_USE@
}

protocol imap {
  mail_plugins = $mail_plugins @IMAP_PLUGINS@
@IMAP_CAPABILITY@
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = @IMAP_PORT@
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = @IMAPS_PORT@
    ssl = yes
  }
  service_count = 0
}
@PROCESS_REUSE@
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = @POP3_PORT@
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = @POP3S_PORT@
    ssl = yes
  }
  service_count = 0
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = @LMTP_PORT@
  }
}
service auth {
  # Postfix's smtpd asks this socket (smtpd_sasl_type = dovecot).
  unix_listener @ROOT@/run/auth-postfix {
    mode = 0666
  }
}
service anvil {
  # No auth-penalty socket: Dovecot then adds no growing delay (up to 15 s) after failed
  # logins from 127.0.0.1, which would slow every later test of the file.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""


def special_use_block():
    lines = []
    for name, use in SPECIAL_USE_FOLDERS:
        lines += [f"  mailbox {name} {{", f"    special_use = {use}", "    auto = subscribe",
                  "  }"]
    return "\n".join(lines)


# With reuse, an IMAP or POP3 process serves one connection at a time but may then serve the
# next (every user has the mail user's uid): starting one per connection costs more CPU than
# anything else in the sync tests. Not for push: IDLE sessions in reused processes were seen
# to miss a change now and then under load (no notification, so no push). A lower
# process_limit keeps the auth service's client_limit above what Dovecot counts reused
# processes may need, which it warns about.
PROCESS_REUSE = """\
service imap {
  service_count = 0
  process_limit = 100
}
service pop3 {
  service_count = 0
  process_limit = 100
}"""


def dovecot_conf(values, profile, compress, reuse_processes=False):
    caps = CAPABILITY_PROFILES[profile]
    cap_line = ""
    if caps is not None:
        if compress and profile in COMPRESS_PROFILES:
            caps += " COMPRESS=DEFLATE"
        cap_line = "  imap_capability = " + caps
    values = dict(values,
                  MECHANISMS=AUTH_MECHANISMS[profile],
                  SPECIAL_USE=special_use_block(),
                  IMAP_PLUGINS="imap_zlib" if compress else "",
                  IMAP_CAPABILITY=cap_line,
                  PROCESS_REUSE=PROCESS_REUSE if reuse_processes else "")
    return render(DOVECOT_CONF, values)


POSTFIX_MAIN_CF = """\
# Private Postfix of the mailferry test harness. Generated; see tests/harness/configs.py.
compatibility_level = 3.6
queue_directory = @ROOT@/postfix/queue
data_directory = @ROOT@/postfix/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = @ROOT@/log/postfix.log
maillog_file_prefixes = @ROOT@
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME

myhostname = localhost
mydomain = @DOMAIN@
myorigin = @DOMAIN@
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains =
mynetworks = 127.0.0.1/32
local_recipient_maps =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled

# Everything goes to the private Dovecot over LMTP.
default_transport = lmtp:inet:127.0.0.1:@LMTP_PORT@
relay_transport = lmtp:inet:127.0.0.1:@LMTP_PORT@
local_transport = lmtp:inet:127.0.0.1:@LMTP_PORT@
lmtp_host_lookup = native
message_size_limit = 104857600
mailbox_size_limit = 0

smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = @ROOT@/run/auth-postfix
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = no
smtpd_tls_security_level = may
smtpd_tls_chain_files = @ROOT@/tls/server.key, @ROOT@/tls/server.crt
smtpd_tls_received_header = yes

# Authenticated clients may send anywhere; the access map rejects (5xx) or defers (4xx)
# chosen recipients. It is a texthash table read when an smtpd process starts, and every
# smtpd serves one session (max_use=1 in master.cf), so an edit counts from the next one.
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_recipient_access texthash:@ROOT@/postfix/recipient_access
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0
notify_classes =
"""

POSTFIX_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:@SMTP_PORT@ inet n - n - - smtpd -o max_use=1
127.0.0.1:@SMTPS_PORT@ inet n - n - - smtpd -o max_use=1
  -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
