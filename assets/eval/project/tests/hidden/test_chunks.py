# SECRET-ORACLE-41: graders only.
import unittest

from textkit import chunks


class ChunksOracle(unittest.TestCase):
    def test_short_tail_the_oracle_way(self):
        self.assertEqual(chunks([1, 2, 3], 2), [[1, 2], [3]])


if __name__ == "__main__":
    unittest.main()
