// A byte trie from literal prefixes to the routes that have them: walking a path through it
// yields, in one pass, every route whose prefix the path starts with.

/// Maps literal prefixes to route positions.
struct PrefixIndex {
    private struct Node {
        var children: [UInt8: Int] = [:]
        var routes: [Int] = []
    }

    private var nodes = [Node()]

    /// Files route number `route` under `prefix`.
    mutating func insert(_ prefix: [UInt8], route: Int) {
        var current = 0
        for byte in prefix {
            if let next = nodes[current].children[byte] {
                current = next
            } else {
                nodes.append(Node())
                nodes[current].children[byte] = nodes.count - 1
                current = nodes.count - 1
            }
        }
        nodes[current].routes.append(route)
    }

    /// The routes whose prefix `path` starts with, in ascending route order.
    func candidates(for path: UnsafeRawBufferPointer) -> [Int] {
        var found = nodes[0].routes
        var current = 0
        for byte in path {
            guard let next = nodes[current].children[byte] else { break }
            current = next
            found.append(contentsOf: nodes[current].routes)
        }
        if found.count > 1 { found.sort() }
        return found
    }
}
