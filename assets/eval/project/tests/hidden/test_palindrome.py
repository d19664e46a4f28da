# SECRET-ORACLE-41: graders only.
import unittest

from textkit import is_palindrome


class PalindromeOracle(unittest.TestCase):
    def test_case_and_spaces_the_oracle_way(self):
        self.assertTrue(is_palindrome("Never odd or even"))
        self.assertFalse(is_palindrome("abc"))


if __name__ == "__main__":
    unittest.main()
