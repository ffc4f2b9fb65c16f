"""The text side: byte-level BPE tokenizer, corpora, packing, masking, the text datamodule."""
