// A frozen byte trie from literal prefixes to route numbers. Walking a path through it finds,
// in one pass over the path's first bytes, every route whose prefix the path starts with; the
// cost depends on the path's length and the few candidates found, not on how many routes
// exist. Stored as flat arrays (children of a node are adjacent), so a lookup allocates
// nothing and touches little memory.

/// Maps each route's literal prefix to the route, and a path to its candidate routes.
struct PrefixIndex {
    private struct Node {
        /// Index in `nodes` (and `edgeBytes`) of the first child; children are adjacent and
        /// sorted by the byte that leads to them.
        var firstChild: Int32 = 0
        var childCount: Int32 = 0
        /// Range in `routes` of the routes whose prefix ends at this node.
        var firstRoute: Int32 = 0
        var routeCount: Int32 = 0
    }

    /// The part of one node's route list a merge has not consumed yet.
    private struct RouteList {
        var next: Int32
        var end: Int32
    }

    private var nodes: [Node] = []
    /// The byte on the edge into each node (a placeholder for the root).
    private var edgeBytes: [UInt8] = [0]
    /// Route numbers grouped by node, ascending within a node.
    private var routes: [Int32] = []
    /// The longest prefix, which bounds how many nodes one walk can visit.
    private var maxDepth = 0

    /// Indexes routes `0..<prefixes.count`, route `n` under `prefixes[n]`.
    init(prefixes: [[UInt8]]) {
        // Build a pointer-style trie first, then lay it out breadth-first so that siblings sit
        // next to each other.
        var children: [[UInt8: Int]] = [[:]]
        var routesAt: [[Int32]] = [[]]
        for (route, prefix) in prefixes.enumerated() {
            var current = 0
            for byte in prefix {
                if let next = children[current][byte] {
                    current = next
                } else {
                    children.append([:])
                    routesAt.append([])
                    children[current][byte] = children.count - 1
                    current = children.count - 1
                }
            }
            routesAt[current].append(Int32(route))
            maxDepth = max(maxDepth, prefix.count)
        }
        var order = [0]  // built node numbers in layout order
        var position = 0
        nodes.reserveCapacity(children.count)
        while position < order.count {
            let built = order[position]
            var node = Node(firstRoute: Int32(routes.count), routeCount: Int32(routesAt[built].count))
            routes += routesAt[built]
            let sorted = children[built].sorted { $0.key < $1.key }
            node.firstChild = Int32(order.count)
            node.childCount = Int32(sorted.count)
            for (byte, child) in sorted {
                order.append(child)
                edgeBytes.append(byte)
            }
            nodes.append(node)
            position += 1
        }
    }

    /// Calls `visit` with every route whose prefix `path` starts with, in ascending route
    /// number (registration order), until `visit` returns true.
    func forEachCandidate(in path: UnsafeRawBufferPointer, _ visit: (Int) -> Bool) {
        let depthBound = min(path.count, maxDepth) + 1
        withUnsafeTemporaryAllocation(of: RouteList.self, capacity: depthBound) { lists in
            var listCount = 0
            var current = 0
            var depth = 0
            while true {
                let node = nodes[current]
                if node.routeCount > 0 {
                    lists[listCount] = RouteList(next: node.firstRoute, end: node.firstRoute + node.routeCount)
                    listCount += 1
                }
                guard depth < path.count, let child = self.child(of: node, byte: path[depth]) else { break }
                current = child
                depth += 1
            }
            if listCount == 1 {
                for slot in Int(lists[0].next)..<Int(lists[0].end) where visit(Int(routes[slot])) { return }
                return
            }
            // Several nodes on the path hold routes: merge their ascending lists.
            while true {
                var best = -1
                var bestRoute = Int32.max
                for list in 0..<listCount where lists[list].next < lists[list].end {
                    let route = routes[Int(lists[list].next)]
                    if route < bestRoute {
                        bestRoute = route
                        best = list
                    }
                }
                guard best >= 0 else { return }
                lists[best].next += 1
                if visit(Int(bestRoute)) { return }
            }
        }
    }

    private func child(of node: Node, byte: UInt8) -> Int? {
        var low = Int(node.firstChild)
        var high = low + Int(node.childCount)
        while low < high {
            let middle = (low + high) / 2
            let edge = edgeBytes[middle]
            if edge == byte { return middle }
            if edge < byte { low = middle + 1 } else { high = middle }
        }
        return nil
    }
}
