"""Wire codecs: pure functions between our types and one provider wire format each."""
