"""What lstmae shows people: tables on the terminal (`terminal`), static plots (`plots`),
the interactive HTML report (`html`) and the shape walk in Keras terms (`explain`)."""
