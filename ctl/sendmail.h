/* mailferryctl sendmail: the sendmail-compatible enqueue that mutt and
 * friends call. The message from stdin goes into the account's outbox, with
 * its envelope, atomically (written in tmp/, synced, renamed into new/);
 * the daemon sends it when it can. Works whether or not the daemon runs. */
#ifndef MF_CTL_SENDMAIL_H
#define MF_CTL_SENDMAIL_H

/* argv[0] is "sendmail". Returns an exit status as sendmail's users expect
 * (sysexits.h): 0 once the message is durable in the outbox. */
int ctl_sendmail(const char *config_path, int argc, char **argv);

#endif
