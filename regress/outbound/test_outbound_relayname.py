"""A smarthost given by name (`smtprelay = "relay.example:PORT"`): queued
has mxcache resolve it through the configured resolver, like a domain,
and relays everything there (DESIGN.md A2, A6).

    /usr/bin/python3 regress/run.py -k test_outbound_relayname
"""

import os

from lib.oututil import (OutCase, make_message, submit,
                         wait_queue_empty)

try:
    from lib import dnsfixture
except ImportError:
    dnsfixture = None

ALICE = 'alice@test.example'

ZONE = '''
$ORIGIN relay.test.
$TTL 3600
smarthost     A 127.0.0.11
'''


class RelayByName(OutCase):

    def setUp(self):
        super().setUp()
        if dnsfixture is None:
            self.skipTest('regress/lib/dnsfixture.py is missing')

    def test_smarthost_by_name(self):
        relay = self.sink('127.0.0.11')
        inst = self.out_instance(start=False, usesmtprelay=True,
                                 smtprelay='smarthost.relay.test:%d'
                                 % relay.port, retrymin=1, retrymax=1)
        srv = dnsfixture.DNSServer(inst.resolver_port, ZONE)
        self.addCleanup(srv.cleanup)
        srv.start()
        inst.start()
        msg = make_message('via a named smarthost')
        submit(inst, ALICE, ['x@far.example', 'y@far.example'], msg)
        [txn] = self.wait_delivered(relay, 1, inst)
        self.assertEqual(sorted(txn.rcpts), ['x@far.example',
                                             'y@far.example'])
        self.assertTrue(txn.data.endswith(msg))
        wait_queue_empty(inst)


if __name__ == '__main__':
    import unittest
    unittest.main()
