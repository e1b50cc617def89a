import pytest

pytest_plugins = ["tests.standin.fixtures"]


@pytest.fixture(scope="session")
def image_plugin(tmp_path_factory):
    """The server image's SQLAlchemy plugin wheel (as `build` packs it), unpacked onto sys.path
    the way pip installs a pure wheel, so SQLAlchemy finds its `sqlalchemy.plugins` entry point."""
    import sys
    import zipfile
    from io import BytesIO

    from mlflow_aca.image_files import plugin_wheel
    from mlflow_aca.template import template_file

    site = tmp_path_factory.mktemp("image-plugin")
    zipfile.ZipFile(BytesIO(plugin_wheel(template_file("mlflow_aca_sql.py")))).extractall(site)
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
