# SPDX-License-Identifier: GPL-2.0
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from lab import Lab, RouterLab  # noqa: E402


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def lab2():
    """A second, independent lab (same interface names, other namespaces)."""
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def router():
    """sender -> router (pktlens) -> receiver, three namespaces (lab.RouterLab)."""
    lab = RouterLab()
    try:
        yield lab
    finally:
        lab.close()
