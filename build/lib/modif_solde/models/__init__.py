"""Tables, payloads, status values and the validation rules shared by import and draft."""
