// Package lang is the front end of attnc: the lexer and participle grammar
// of .attn files, the AST (every node carries Pos and EndPos), diagnostics,
// the canonical formatter, and elaboration — name resolution, block
// instantiation, repeat unrolling, shape and dtype checking — which turns a
// checked model into an ir.Module.
//
// The pipeline for one file is Parse → Load (imports) → Elaborate. Every
// stage collects positioned diagnostics instead of stopping at the first,
// and nothing a user writes can make it panic: FuzzParse and FuzzCheck
// guard that. Nor can it make the front end hang, exhaust memory or
// overflow its stack: Limits bounds nesting, unrolling, block expansion
// and mask size, and compile-time integer arithmetic is checked.
//
// lang imports ir and nothing else of attnc.
package lang
