"""The helpers the regression tests share, one package.

Tests and tools import it as `from lib import pmtest, smtputil` (or
`from lib.smtputil import SmtpCase`), with regress/ on the module path:
regress/run.py and regress/bench/run.py put it there for what they start
(PYTHONPATH), the Makefile for what it runs.  By hand:

    PYTHONPATH=regress /usr/bin/python3 regress/bench/smtp_bench.py
    /usr/bin/python3 regress/run.py regress/smtp/test_smtp_basic.py

No file edits sys.path: a module imported under two names (pmtest and
lib.pmtest) would be two modules with two lists of instances to clean up.
"""
