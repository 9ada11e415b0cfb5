"""Only importable when --app-dir points at other_dir."""


async def app(scope, receive, send):
    pass
