"""SignalGuard: SIGTERM/SIGINT become exceptions in the main thread, except inside code
that must not be cut (re-delivered a moment later) and after shield() (acknowledged)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from chaos.runner.signals import SignalGuard, Terminated


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_sigterm_raises_terminated_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with SignalGuard() as guard, pytest.raises(Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
        _spin(2.0)
    assert guard.interrupted and guard.received == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigint_raises_keyboard_interrupt() -> None:
    with SignalGuard(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        _spin(2.0)


def test_signal_inside_an_unsafe_function_is_redelivered_after_it() -> None:
    finished: list[bool] = []

    def _releaseLock() -> None:  # the name of logging's at-fork hook
        os.kill(os.getpid(), signal.SIGTERM)
        _spin(0.1)
        finished.append(True)

    with SignalGuard(), pytest.raises(Terminated):
        _releaseLock()
        assert finished == [True]
        _spin(2.0)
    assert finished == [True]


def test_after_shield_signals_are_counted_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    with SignalGuard() as guard:
        guard.shield()
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        _spin(0.2)
    assert guard.received == [signal.SIGINT, signal.SIGTERM]
    assert "still healing" in capsys.readouterr().err


def test_a_second_signal_after_the_first_does_not_raise_again() -> None:
    with SignalGuard() as guard:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            _spin(2.0)
        os.kill(os.getpid(), signal.SIGINT)  # during cleanup
        _spin(0.2)
    assert len(guard.received) == 2
