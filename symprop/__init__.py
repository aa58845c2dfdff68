"""symprop: symbolic backpropagation."""
