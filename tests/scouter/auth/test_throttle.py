import pytest

from scouter.auth import LoginLimits, LoginThrottle

T0 = 1000.0


def _fail(throttle: LoginThrottle, username: str, times: int, now: float = T0) -> None:
    for _ in range(times):
        throttle.record_failure(username, now)


def test_first_failures_are_free() -> None:
    """Four consecutive failures cost nothing: the next attempt may go ahead at once."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 4)
    assert (0.0, True) == (throttle.retry_after("admin", T0), throttle.allows("admin", T0))


def test_fifth_failure_imposes_one_second() -> None:
    """After the fifth failure the next attempt waits 1 s, counted from that failure."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 5)
    assert [1.0, 0.5, 0.0] == [throttle.retry_after("admin", now) for now in (T0, T0 + 0.5, T0 + 1.0)]
    assert (False, True) == (throttle.allows("admin", T0 + 0.999), throttle.allows("admin", T0 + 1.0))


def test_delay_doubles_up_to_the_cap() -> None:
    """Each further failure doubles the wait: 1, 2, 4, ... seconds, never more than 60 s."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 4)
    delays = []
    for _ in range(9):
        throttle.record_failure("admin", T0)
        delays.append(throttle.retry_after("admin", T0))
    assert [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0] == delays


def test_never_a_permanent_lock() -> None:
    """Even after thousands of failures the wait stays at the cap, so the admin can always get back in."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 5000)
    assert [60.0, 0.0] == [throttle.retry_after("admin", T0), throttle.retry_after("admin", T0 + 60.0)]


def test_checking_does_not_count() -> None:
    """Asking (and being refused) is not a failure: the wait does not grow while the caller only checks."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 6)
    for step in range(10):
        throttle.retry_after("admin", T0 + step * 0.1)
    assert 2.0 == throttle.retry_after("admin", T0)


def test_success_resets() -> None:
    """A successful login forgets the failures: the next five are free again."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 7)
    throttle.record_success("admin")
    _fail(throttle, "admin", 4, now=T0 + 1)
    assert (0.0, 1) == (throttle.retry_after("admin", T0 + 1), len(throttle))


def test_failures_expire() -> None:
    """Fifteen minutes without a failure forgets the count."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 8)
    later = T0 + 900.0
    assert 0.0 == throttle.retry_after("admin", later)
    throttle.record_failure("admin", later)
    assert 0.0 == throttle.retry_after("admin", later)  # counted as the first failure of a new run


def test_failures_just_before_expiry_still_count() -> None:
    """A failure 899 s after the previous one continues the run."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 4)
    throttle.record_failure("admin", T0 + 899.0)
    assert 1.0 == throttle.retry_after("admin", T0 + 899.0)


def test_users_are_independent() -> None:
    """Failures for one name do not delay another."""
    throttle = LoginThrottle()
    _fail(throttle, "admin", 11)
    assert (60.0, 0.0) == (throttle.retry_after("admin", T0), throttle.retry_after("guest", T0))


def test_memory_is_bounded_oldest_evicted() -> None:
    """Beyond max_tracked names, the one whose last failure is oldest is dropped."""
    throttle = LoginThrottle(free_failures=0, base_delay=10.0, max_delay=10.0, max_tracked=3)
    for offset, name in enumerate("abcd"):
        throttle.record_failure(name, T0 + offset)
    now = T0 + 3
    assert (3, [0.0, 8.0, 9.0, 10.0]) == (len(throttle), [throttle.retry_after(n, now) for n in "abcd"])


def test_a_new_failure_refreshes_a_name() -> None:
    """A name that fails again moves to the back of the eviction queue."""
    throttle = LoginThrottle(free_failures=0, max_tracked=2)
    throttle.record_failure("a", T0)
    throttle.record_failure("b", T0 + 1)
    throttle.record_failure("a", T0 + 2)
    throttle.record_failure("c", T0 + 3)
    assert [True, False, True] == [throttle.retry_after(n, T0 + 3) > 0 for n in "abc"]


def test_expired_names_are_pruned() -> None:
    """Recording a failure drops names whose failures have expired."""
    throttle = LoginThrottle()
    _fail(throttle, "a", 1)
    _fail(throttle, "b", 1, now=T0 + 10)
    throttle.record_failure("c", T0 + 905)
    assert 2 == len(throttle)


def test_custom_policy() -> None:
    """Threshold, base delay and cap are configurable."""
    throttle = LoginThrottle(free_failures=2, base_delay=0.5, max_delay=3.0, forget_after=10.0)
    delays = []
    for _ in range(6):
        throttle.record_failure("x", T0)
        delays.append(throttle.retry_after("x", T0))
    assert [0.0, 0.5, 1.0, 2.0, 3.0, 3.0] == delays


@pytest.mark.parametrize(
    "kwargs",
    [
        {"free_failures": -1},
        {"base_delay": 0},
        {"max_delay": -1.0},
        {"base_delay": 10.0, "max_delay": 5.0},
        {"max_delay": 60.0, "forget_after": 30.0},
        {"max_tracked": 0},
    ],
)
def test_invalid_policy_is_refused(kwargs: dict[str, float]) -> None:
    """Nonsensical settings are refused at construction."""
    with pytest.raises(ValueError, match="must be"):
        LoginThrottle(**kwargs)  # type: ignore[arg-type]


def test_limits_keep_the_owner_out_of_an_attackers_failures() -> None:
    """Failures for a name from one address throttle that address for that name only; the per-address count
    throttles a sprayer whatever name it tries next; a success resets the name at that address, not the address."""
    limits = LoginLimits(
        per_user=LoginThrottle(free_failures=2, base_delay=10, max_delay=10, forget_after=900),
        per_address=LoginThrottle(free_failures=4, base_delay=20, max_delay=20, forget_after=900),
    )
    for _ in range(2):
        limits.record_failure("admin", "10.0.0.66", 0.0)
    assert 10.0 == limits.retry_after("admin", "10.0.0.66", 0.0)
    assert 0.0 == limits.retry_after("admin", "10.0.0.7", 0.0)
    assert 0.0 == limits.retry_after("bob", "10.0.0.66", 0.0)
    limits.record_failure("bob", "10.0.0.66", 0.0)
    limits.record_failure("carol", "10.0.0.66", 0.0)
    assert 20.0 == limits.retry_after("dave", "10.0.0.66", 0.0)
    limits.record_success("admin", "10.0.0.66")
    assert 20.0 == limits.retry_after("admin", "10.0.0.66", 0.0)
    assert 0.0 == limits.retry_after("admin", "10.0.0.7", 0.0)
