"""Judge methods (VIEScore, TIFA, DSG): upstream prompts, reply parsing and scoring, backend-agnostic."""
