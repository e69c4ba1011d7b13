// Package stdlib embeds attnc's standard library of .attn files: the layers
// (layers.attn), one model per seed architecture and char_lm, a byte-level
// language model of attnc's own documentation. Files are addressed by
// import paths of the form "std/NAME.attn".
package stdlib
