# SECRET-ORACLE-41: graders only.
import unittest

from textkit import clamp


class ClampOracle(unittest.TestCase):
    def test_bounds_the_oracle_way(self):
        self.assertEqual(clamp(5, 0, 10), 5)
        self.assertEqual(clamp(-1, 0, 10), 0)
        self.assertEqual(clamp(11, 0, 10), 10)


if __name__ == "__main__":
    unittest.main()
