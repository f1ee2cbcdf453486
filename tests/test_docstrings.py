"""Every ``Examples`` section in the package's docstrings runs and gives its output."""

import doctest
import importlib
import pkgutil
import warnings

import pytest

import sk_metalstm

# Private modules too: public functions may be defined in one and re-exported
# (``sk_metalstm.persistence``), and doctest only runs a module's own objects.
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(sk_metalstm.__path__, prefix="sk_metalstm.")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    with warnings.catch_warnings():
        # sktime's notice about its remember_data default, and nothing else.
        warnings.filterwarnings(
            "ignore", message="The default of config ``remember_data``", category=FutureWarning
        )
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
        )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
