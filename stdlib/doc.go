// Package stdlib embeds attnc's standard library of .attn files: the layers
// (layers.attn) and one model per seed architecture. Files are addressed by
// import paths of the form "std/NAME.attn".
package stdlib
