print("unclosed string
