package stdlib

import "embed"

// FS holds the standard library files; "std/layers.attn" in an import is
// FS's "layers.attn".
//
//go:embed *.attn
var FS embed.FS

// Models lists the stdlib files that define a model, one per seed
// architecture.
var Models = []string{
	"seq2seq.attn",
	"pointer_sort.attn",
	"hybrid_ssm.attn",
	"mixed_span_lm.attn",
	"partial_lm.attn",
	"char_lm.attn",
	"mamba_hybrid.attn",
	"music_rel.attn",
	"aaren.attn",
	"topk_sparse_lm.attn",
	"ptrnet_lstm.attn",
	"order_matters.attn",
	"titans_mem.attn",
	"lightning_lm.attn",
	"rat_lm.attn",
	"longvq.attn",
	"seqboat.attn",
	"routing_lm.attn",
}
