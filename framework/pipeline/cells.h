/* pipeline/cells: the identity of an eval cell and the file of exact cell values (private to
 * pipeline/).
 *
 * An eval cell (task x language x setup x seed, or a cell of the MLM and retrieval tables) is
 * named by the FNV-1a hash of everything that produced it: XA_CELL_VERSION, the table, the cell's
 * coordinates, the base and tokenizer, every adapter, fusion and head directory it loaded (the
 * provenance file of the artefact that holds the directory, and the size and mtime of its weight
 * and config files), the data file it scored (path, size and mtime) and the eval settings
 * (batch size, sequence length, seed). A rerun looks the identity up in the previous results'
 * cells.tsv and reuses the values only on an exact match; anything else is computed again.
 *
 * cells.tsv: one line per cell, "ID<TAB>NV<TAB>V1 V2 ... VNV" (ID 16 hex digits, the values as C
 * hex floats, so a reused cell gives the same table bits as a computed one). Lines that do not
 * parse are ignored (the cell is computed again). */
#ifndef XA_PIPELINE_CELLS_H
#define XA_PIPELINE_CELLS_H

#include <stdint.h>
#include <stdio.h>

#include "core/core.h"

/* Bump when the eval numerics change, so no cell of an older xadapt is reused. */
#define XA_CELL_VERSION "xadapt eval cell 1"

/* The identity hash: start with the table name, then add pieces (each with a separator). */
uint64_t xa_cell_begin(const char *table);
uint64_t xa_cell_str(uint64_t h, const char *s);        /* s may be NULL ("(none)") */
uint64_t xa_cell_int(uint64_t h, int64_t v);
uint64_t xa_cell_file(uint64_t h, const char *path);    /* path, then its size and mtime (or "missing") */
/* An artefact directory (may be NULL or ""): the provenance file found in dir or one of its two
 * parents (hashed whole; else dir's path: a downloaded base, an adapter made elsewhere), then the
 * size and mtime of its weight and config files. */
uint64_t xa_cell_dir(uint64_t h, const char *dir);
/* The "inputs" id of xa_pipeline_inputs_id: the provenance alone when there is one, else as
 * xa_cell_dir; NULL or "" adds nothing. */
uint64_t xa_cell_inputs(uint64_t h, const char *dir);
void xa_cell_hex(uint64_t h, char out[17]);

typedef struct xa_cell {
    uint64_t id;
    int nv;
    double *v; /* (nv) owned */
} xa_cell;

typedef struct xa_cells {
    int n, cap;
    xa_cell *c; /* (n) owned */
} xa_cells;

/* Read path into *c (zeroed first; a missing file gives an empty set). NOMEM only; free with
 * xa_cells_free. */
xa_status xa_cells_read(xa_cells *c, const char *path);
void xa_cells_free(xa_cells *c);
/* The values of cell id when it has exactly nv of them, else NULL. */
const double *xa_cells_find(const xa_cells *c, uint64_t id, int nv);
/* Append one line for cell id to f. */
void xa_cells_write(FILE *f, uint64_t id, const double *v, int nv);

#endif
