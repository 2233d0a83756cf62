#!/bin/sh
# The #include "..." graph of daemon/ has no cycle beyond the known ones.
#
# Every daemon/x.c and daemon/x.h is one node, x; an edge x -> y is an
# #include "y.h" in either file. The graph's strongly connected components
# of more than one node are its cycles; each must be one of ALLOWED below,
# exactly (a module joining a known cycle is a new one). A failure names a
# cycle it found, as a path.
#
#   include_cycles.sh [SRCDIR]     (default: $NT_SRCDIR, or this file's ..)
set -eu

# Known cycles, one per line, members sorted. The worker runs connections
# and admission hands it connections and is told when they end: they
# call each other, and stats sums what both count. Shrink this list; do
# not grow it.
ALLOWED='
admit conn stats worker
'

src=${1:-${NT_SRCDIR:-$(dirname "$0")/..}}
cd "$src/daemon"

# shellcheck disable=SC2086
awk -v allowed="$ALLOWED" '
function modname(path) {
	sub(/^.*\//, "", path)
	sub(/\.[ch]$/, "", path)
	return path
}
FNR == 1 { known[modname(FILENAME)] = 1 }
/^[ \t]*#[ \t]*include[ \t]*"/ {
	line = $0
	sub(/^[^"]*"/, "", line)
	sub(/".*$/, "", line)
	from = modname(FILENAME)
	to = modname(line)
	if (from != to)
		edge[from, to] = 1
}
# Tarjan: comp[v] is the component of v once it is found
function strong(v,    w) {
	index_of[v] = lowlink[v] = ++counter
	stack[++sp] = v
	on_stack[v] = 1
	for (w in known) {
		if (!((v, w) in edge))
			continue
		if (!(w in index_of)) {
			strong(w)
			if (lowlink[w] < lowlink[v])
				lowlink[v] = lowlink[w]
		} else if (on_stack[w] && index_of[w] < lowlink[v]) {
			lowlink[v] = index_of[w]
		}
	}
	if (lowlink[v] == index_of[v]) {
		ncomp++
		do {
			w = stack[sp--]
			on_stack[w] = 0
			comp[w] = ncomp
			size[ncomp]++
		} while (w != v)
	}
}
# the members of component c, sorted, space-separated
function members(c,    n, i, j, t, m, out) {
	n = 0
	for (m in comp)
		if (comp[m] == c)
			list[++n] = m
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && list[j - 1] > list[j]; j--) {
			t = list[j]; list[j] = list[j - 1]; list[j - 1] = t
		}
	out = list[1]
	for (i = 2; i <= n; i++)
		out = out " " list[i]
	return out
}
# a cycle through first, inside component c, as "a -> b -> a"
function cycle(first, c,    queue, head, tail, v, w, seen, parent, path) {
	head = tail = 0
	queue[++tail] = first
	while (head < tail) {
		v = queue[++head]
		for (w in known) {
			if (!((v, w) in edge) || comp[w] != c)
				continue
			if (w == first) {
				path = first
				for (; v != first; v = parent[v])
					path = v " -> " path
				return first " -> " path
			}
			if (!(w in seen)) {
				seen[w] = 1
				parent[w] = v
				queue[++tail] = w
			}
		}
	}
	return first
}
END {
	n = split(allowed, lines, "\n")
	for (i = 1; i <= n; i++) {
		if (lines[i] == "")
			continue
		ok[lines[i]] = 1
		k = split(lines[i], words, " ")
		for (j = 1; j <= k; j++)
			in_known_cycle[words[j]] = 1
	}
	for (v in known)
		if (!(v in index_of))
			strong(v)
	bad = 0
	for (c = 1; c <= ncomp; c++) {
		if (size[c] < 2)
			continue
		m = members(c)
		found[m] = 1
		if (m in ok)
			continue
		# through a module that joined, when one did
		k = split(m, words, " ")
		start = words[1]
		for (j = 1; j <= k; j++)
			if (!(words[j] in in_known_cycle)) {
				start = words[j]
				break
			}
		printf "include_cycles: a cycle in daemon/: %s\n", \
		    cycle(start, c)
		printf "include_cycles: (modules %s)\n", m
		bad = 1
	}
	for (m in ok)
		if (!bad && !(m in found))
			printf "include_cycles: \"%s\" is no cycle any more: " \
			    "take it off the list\n", m
	exit bad
}
' ./*.c ./*.h
