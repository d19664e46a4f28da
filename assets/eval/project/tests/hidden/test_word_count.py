# SECRET-ORACLE-41: graders only.
import unittest

from textkit import word_count


class WordCountOracle(unittest.TestCase):
    def test_spacing_the_oracle_way(self):
        self.assertEqual(word_count("  one   two\tthree\n"), 3)
        self.assertEqual(word_count(""), 0)


if __name__ == "__main__":
    unittest.main()
