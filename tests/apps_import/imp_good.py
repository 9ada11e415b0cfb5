"""Import targets for tests/test_importer.py and tests/test_cli.py."""


async def app(scope, receive, send):
    pass


class Holder:
    app = staticmethod(app)


holder = Holder()
NOT_CALLABLE = 42


def create_app():
    return app


def bad_factory():
    return 42


def raising_factory():
    raise RuntimeError("boom from raising_factory")
