"""Datasets: manifests, indexers (FMA, MUSDB18, folders), the offline corpus builder and
training windows.

    manifest.py   ManifestItem, read_manifest / write_manifest (JSON Lines, validated)
    report.py     broken-input probing and index_report.json
    fma.py, musdb.py, folder.py   indexers → IndexReport (items + skipped files)
    sources.py, styles.py, arrange.py, captions.py, corpus.py   music21/MIDI → audio corpus
    segments.py   SegmentDataset: fixed-length windows with captions and exact chroma
"""

from audiogen.data.manifest import ManifestItem, read_manifest, write_manifest

__all__ = ["ManifestItem", "read_manifest", "write_manifest"]
