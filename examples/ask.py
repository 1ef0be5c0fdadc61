"""Ask the shipped EMS corpus a question and look at what came back."""

import emsqa

answer = emsqa.ask("What is the difference between an EMT and a paramedic?")
print(answer)
print()
print(f"confidence {answer.confidence:.2f}; cited passages:")
for citation in answer.citations:
    p = citation.passage
    print(f"  [{citation.n}] {p.doc_id} characters {p.start}-{p.end} (score {citation.score:.2f})")
