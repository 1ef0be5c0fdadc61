"""Index your own documents (a folder of .txt/.md/.html/.pdf/.jsonl, or Documents made in code)."""

import emsqa

notes = [
    emsqa.Document(
        id="stroke.md",
        title="Stroke protocol",
        text="Stroke protocol\n\nUse the BE-FAST scale: balance, eyes, face, arm, speech, time. "
        "Note the time the patient was last known well, because clot-busting treatment is only "
        "given within a limited window.\n",
    ),
    emsqa.Document(
        id="glucose.md",
        title="Low blood sugar",
        text="Low blood sugar\n\nIf the patient can swallow, give oral glucose. "
        "Check the blood glucose again after fifteen minutes.\n",
    ),
]
index = emsqa.Index.build(notes)
for hit in index.search("why does the last known well time matter", k=2):
    print(f"{hit.rank}. {hit.passage.doc_id} ({hit.score:.2f}): {hit.passage.text[:70]}…")
print(index.ask("When should blood glucose be checked again?"))
