import {Help} from '@oclif/core'

const EXAMPLES = `EXAMPLES
  Run the daemon in the console (sources → filters → jails → actions):
    $ spylog run --foreground

  What would the jails have banned in the existing logs? (changes nothing)
    $ spylog run --dry-run --from-start

  Jails and bans of the running daemon; lift a ban:
    $ spylog status
    $ spylog unban 192.0.2.7

  Test a fail2ban filter on a log (like fail2ban-regex):
    $ spylog regex /var/log/auth.log /etc/fail2ban/filter.d/sshd.conf

  Try one line against a regex and print the offender:
    $ spylog regex 'Failed password for root from 192.0.2.7 port 22' 'from <HOST>' -o ip

  Check annotated sample logs against filters (for filter authors' CI):
    $ spylog testcases --fail2ban-dir /path/to/fail2ban

  Help for one command:
    $ spylog regex --help
`

/** oclif's help, with examples on the root page too. */
export default class SpylogHelp extends Help {
  protected override async showRootHelp(): Promise<void> {
    await super.showRootHelp()
    this.log(EXAMPLES)
  }
}
