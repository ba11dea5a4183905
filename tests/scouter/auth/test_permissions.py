import pytest

from scouter.auth import (
    NEED_ADMIN,
    PERMISSION_DENIED,
    Access,
    Denied,
    Identity,
    Requirement,
    can_delete,
    can_read,
    can_write,
    check,
    first_unwritable,
    has_permission,
    is_admin,
)

ADMIN = Identity("admin", ("read:all", "write:all"), ("admin",))
BARE_ADMIN = Identity("root", (), ("admin",))
GUEST = Identity("guest", ("read:all", "write:all", "delete:all"), ("user",))
READER = Identity("reader", ("read:all",), ("user",))
WRITER = Identity("writer", ("write:all",), ("user",))
DELETER = Identity("deleter", ("delete:all",), ("user",))
SCOPED = Identity("scoped", ("read:team", "write:team", "delete:team"), ("user",))
NOBODY = Identity("nobody", (), ())
# "admin" as a plain permission, not a group: upstream only looks at group_permissions for admin rights.
FAKE_ADMIN = Identity("fake", ("admin",), ("user",))


@pytest.mark.parametrize(
    ("identity", "team", "other"),
    [
        # (read, write, delete) on space "team", then on space "other"
        (ADMIN, (True, True, True), (True, True, True)),
        (BARE_ADMIN, (True, True, True), (True, True, True)),
        (GUEST, (True, True, True), (True, True, True)),
        (READER, (True, False, False), (True, False, False)),
        (WRITER, (False, True, False), (False, True, False)),
        (DELETER, (False, False, True), (False, False, True)),
        (SCOPED, (True, True, True), (False, False, False)),
        (NOBODY, (False, False, False), (False, False, False)),
        (FAKE_ADMIN, (False, False, False), (False, False, False)),
    ],
)
def test_space_permission_matrix(
    identity: Identity, team: tuple[bool, bool, bool], other: tuple[bool, bool, bool]
) -> None:
    """Space access comes from `<action>:<space>`, `<action>:all` or the admin group, one action at a time."""
    assert (team, other) == tuple(
        (can_read(identity, space), can_write(identity, space), can_delete(identity, space))
        for space in ("team", "other")
    )


def test_all_grants_are_not_prefix_matches() -> None:
    """`read:team` grants space "team" only, not spaces sharing its prefix."""
    assert (True, False) == (can_read(SCOPED, "team"), can_read(SCOPED, "teams"))


@pytest.mark.parametrize(
    ("identity", "expected"),
    [(ADMIN, True), (BARE_ADMIN, True), (GUEST, False), (FAKE_ADMIN, False), (NOBODY, False)],
)
def test_is_admin_reads_the_group(identity: Identity, expected: bool) -> None:
    """Admin rights come from "admin" in group_permissions only."""
    assert expected == is_admin(identity)


def test_has_permission() -> None:
    """A listed permission is held; the admin group holds every permission; nothing else does."""
    assert [True, False, True, True] == [
        has_permission(READER, "read:all"),
        has_permission(READER, "write:x"),
        has_permission(BARE_ADMIN, "anything:at-all"),
        has_permission(FAKE_ADMIN, "admin"),
    ]


def test_denied_bodies_are_upstream_messages() -> None:
    """The two refusals carry upstream's 403 status and error texts."""
    assert [(403, {"error": "Permission denied"}), (403, {"error": "Need admin permission"})] == [
        (PERMISSION_DENIED.status, PERMISSION_DENIED.body),
        (NEED_ADMIN.status, NEED_ADMIN.body),
    ]


def test_denied_body_is_a_fresh_dict() -> None:
    """Mutating one response body cannot change the shared constant."""
    PERMISSION_DENIED.body["error"] = "changed"
    assert {"error": "Permission denied"} == PERMISSION_DENIED.body


def test_requirement_constructors() -> None:
    """Each constructor records its access kind and the request field to read."""
    assert [
        Requirement(Access.AUTHENTICATED, None),
        Requirement(Access.READ, "space"),
        Requirement(Access.WRITE, "space"),
        Requirement(Access.DELETE, "space"),
        Requirement(Access.ADMIN, None),
        Requirement(Access.ADMIN_OR_SELF, "username"),
        Requirement(Access.READ, "space_param"),
    ] == [
        Requirement.authenticated(),
        Requirement.read(),
        Requirement.write(),
        Requirement.delete(),
        Requirement.admin(),
        Requirement.admin_or_self(),
        Requirement.read("space_param"),
    ]


@pytest.mark.parametrize(
    ("requirement", "identity", "expected"),
    [
        (Requirement.authenticated(), NOBODY, None),
        (Requirement.read(), READER, None),
        (Requirement.read(), WRITER, PERMISSION_DENIED),
        (Requirement.write(), WRITER, None),
        (Requirement.write(), READER, PERMISSION_DENIED),
        (Requirement.write(), SCOPED, None),
        (Requirement.delete(), GUEST, None),
        (Requirement.delete(), ADMIN, None),
        (Requirement.delete(), READER, PERMISSION_DENIED),
        (Requirement.write(), BARE_ADMIN, None),
    ],
)
def test_check_space_requirements(requirement: Requirement, identity: Identity, expected: Denied | None) -> None:
    """Space requirements pass with the matching permission and refuse with 403 "Permission denied"."""
    assert expected == check(requirement, identity, space="team")


def test_check_scoped_space_elsewhere() -> None:
    """A permission on one space does not pass a requirement on another."""
    assert PERMISSION_DENIED == check(Requirement.write(), SCOPED, space="other")


@pytest.mark.parametrize(
    ("identity", "expected"), [(ADMIN, None), (BARE_ADMIN, None), (GUEST, NEED_ADMIN), (FAKE_ADMIN, NEED_ADMIN)]
)
def test_check_admin(identity: Identity, expected: Denied | None) -> None:
    """Admin-only user routes pass for the admin group and refuse others with "Need admin permission"."""
    assert expected == check(Requirement.admin(), identity)


@pytest.mark.parametrize(
    ("identity", "username", "expected"),
    [
        (GUEST, "guest", None),
        (GUEST, "admin", PERMISSION_DENIED),
        (ADMIN, "guest", None),
        (FAKE_ADMIN, "guest", PERMISSION_DENIED),
    ],
)
def test_check_admin_or_self(identity: Identity, username: str, expected: Denied | None) -> None:
    """GET/PUT user pass for the admin group or the user themself, else "Permission denied"."""
    assert expected == check(Requirement.admin_or_self(), identity, username=username)


@pytest.mark.parametrize("requirement", [Requirement.read(), Requirement.write(), Requirement.delete()])
def test_space_requirement_without_space_is_a_bug(requirement: Requirement) -> None:
    """Checking a space requirement without the space raises instead of guessing."""
    with pytest.raises(ValueError, match="space="):
        check(requirement, ADMIN)


def test_admin_or_self_without_username_is_a_bug() -> None:
    """Checking "admin or self" without the user name raises instead of guessing."""
    with pytest.raises(ValueError, match="username="):
        check(Requirement.admin_or_self(), ADMIN)


def test_identity_normalises_lists_to_tuples() -> None:
    """Identities built from JSON lists compare equal to tuple-built ones and are hashable."""
    from_lists = Identity("admin", ["read:all", "write:all"], ["admin"])  # type: ignore[arg-type]
    assert ADMIN == from_lists
    assert hash(ADMIN) == hash(from_lists)


def test_first_unwritable_names_the_first_refused_space() -> None:
    """Every space is checked, not only the first: the first refused one (sorted) is named; None when all pass."""
    writer = Identity("w", ("write:a", "write:c"))
    assert "b" == first_unwritable(writer, {"c", "a", "b", "d"})
    assert first_unwritable(writer, ["a", "c"]) is None
    assert first_unwritable(Identity("x", ("write:all",)), ["a", "zz"]) is None
    assert first_unwritable(Identity("root", (), ("admin",)), ["a"]) is None
