"""Training loops (encoder pre-training; later instruction tuning). Not imported by the library."""
