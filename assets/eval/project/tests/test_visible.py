import unittest

from textkit import chunks, clamp, is_palindrome, slugify, word_count


class VisibleTest(unittest.TestCase):
    def test_simple_cases(self):
        self.assertEqual(slugify("a b"), "a-b")
        self.assertEqual(word_count("one two"), 2)
        self.assertTrue(is_palindrome("abba"))
        self.assertEqual(chunks([1, 2], 2), [[1, 2]])


if __name__ == "__main__":
    unittest.main()
