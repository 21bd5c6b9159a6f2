"""Evaluation: FAD with named, locally loaded embeddings; CLAP score; KL; chroma cosine;
codec metrics; JSON + Markdown reports."""
