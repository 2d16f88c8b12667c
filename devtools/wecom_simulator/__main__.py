"""``python -m wecom_simulator`` (the command line: ``wecom_simulator.cli``).

Ctrl-C and SIGTERM are taken over before anything else is imported, so a signal
at any moment of the start, even during the imports, ends in the same clean stop.
"""

from wecom_simulator.stop_signal import StopSignal

if __name__ == "__main__":
    STOP = StopSignal().install()
    from wecom_simulator.cli import main  # after the signals are ours

    main(STOP)
