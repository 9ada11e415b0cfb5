"""A module that exists but imports a dependency that does not."""

import pounce_test_no_such_dependency  # noqa: F401


async def app(scope, receive, send):
    pass
