import pytest

from toolzoo.sandbox.k8s_double import FakeKubernetesAPI


@pytest.fixture
def fake_api():
    api = FakeKubernetesAPI()
    yield api
    api.close()


@pytest.fixture
def anyio_backend():
    return "asyncio"
