"""The pieces of `prep.validate`: problem records, folder scanning, image headers, deep decoding."""
