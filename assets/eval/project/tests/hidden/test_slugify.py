# SECRET-ORACLE-41: graders only.
import unittest

from textkit import slugify


class SlugifyOracle(unittest.TestCase):
    def test_lowercases_the_oracle_way(self):
        self.assertEqual(slugify("Hello  World"), "hello-world")


if __name__ == "__main__":
    unittest.main()
