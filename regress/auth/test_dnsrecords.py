"""pymailadm dnsrecords DOMAIN: the records a local domain needs, from
the configuration: MX to serverhostname, SPF naming the MX hosts, the
DKIM record of every configured key of the domain (the same record
`pymailadm dkimkey` printed when it made the key, which dkimpy accepts
for mail the daemon signed), DMARC. A domain that is not local, or a key
file that cannot be read, is one clear line and a non-zero status.

    /usr/bin/python3 regress/run.py regress/auth/test_dnsrecords.py
"""

import os
import re

from lib.smtputil import SmtpCase


def txt_of(line):
    """The character-strings of a TXT line, joined."""
    return ''.join(re.findall(r'"([^"]*)"', line))


class DnsRecords(SmtpCase):

    def test_records_of_a_domain_with_keys(self):
        inst = self.smtp_instance(start=False)
        made = {}
        for args in (('s1',), ('e1', '--ed25519')):
            r = inst.adm('dkimkey', 'test.example', *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            path = re.search(r'Key written to (\S+)', r.stdout).group(1)
            rec = [ln for ln in r.stdout.splitlines() if ' IN TXT ' in ln]
            made[args[0]] = (path, rec[0])
        inst.write_config(extra='dkim = ( %s );' % ', '.join(
            '{ domain = "test.example"; selector = "%s"; key = "%s"; }'
            % (sel, path) for sel, (path, _) in sorted(made.items())))
        r = inst.adm('dnsrecords', 'test.example')
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [ln for ln in r.stdout.splitlines()
                 if ln and not ln.startswith(';')]
        self.assertIn('test.example. IN MX 10 mail.test.example.', lines)
        self.assertIn('test.example. IN TXT "v=spf1 mx -all"', lines)
        for sel, (_, rec) in made.items():
            self.assertIn(rec, lines, 'the %s record differs' % sel)
            self.assertTrue(all(len(s) <= 255 for s in
                                re.findall(r'"([^"]*)"', rec)))
        dmarc = [ln for ln in lines if ln.startswith('_dmarc.')]
        self.assertEqual(len(dmarc), 1, lines)
        self.assertTrue(txt_of(dmarc[0]).startswith('v=DMARC1; p='))
        self.assertEqual(len(lines), 5, r.stdout)

    def test_without_keys_says_how_to_make_one(self):
        inst = self.smtp_instance(start=False)
        r = inst.adm('dnsrecords', 'test.example')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('pymailadm dkimkey test.example', r.stdout)
        self.assertNotIn('_domainkey', r.stdout)

    def test_bad_input(self):
        inst = self.smtp_instance(start=False)
        r = inst.adm('dnsrecords', 'other.example')
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn('other.example is not one of localdomains', r.stderr)
        r = inst.adm('dnsrecords')
        self.assertEqual(r.returncode, 2)
        missing = os.path.join(inst.dir, 'gone.key')
        inst.write_config(extra='dkim = ( { domain = "test.example"; '
                          'selector = "s9"; key = "%s"; } );' % missing)
        r = inst.adm('dnsrecords', 'test.example')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(missing, r.stderr)
