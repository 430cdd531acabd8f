"""The havip formula's tests.

Nothing they import writes bytecode into the formula's folders (what `spm
build` packs and Salt syncs): not pytest (see conftest.py), and not the
lab's tools (``python3 -m test.lab.probe`` ...), which the lab's hosts run
from this tree and which import the helpers of ``_utils/``.
"""

import sys

sys.dont_write_bytecode = True
