/// A render node network as a graph file declares it (Lumiera's low-level
/// model): nodes, each a processor made afresh for every use, and for each
/// node the nodes whose frames it takes, in order. A `pull` queue's frame
/// jobs pull the network's exit node (the one node no other takes from),
/// which pulls its inputs depth first; the render module turns the config
/// into that network (`RenderNetwork`).
///
/// Threading: a value; any thread. `Node.make` is called once per network
/// instance (a pulling queue makes one per worker).
public struct NodeNetworkConfig: Sendable {
    /// One node: its name, its processor's name (for messages) and how to make it.
    public struct Node: Sendable {
        public var name: String
        public var processor: String
        public var make: @Sendable () -> any BufferProcessor
        /// Indices in `nodes` of the nodes whose frames it takes, in order (a compositor's layer 0, then layer 1).
        public var inputs: [Int]

        public init(name: String, processor: String, inputs: [Int] = [], make: @escaping @Sendable () -> any BufferProcessor) {
            (self.name, self.processor, self.inputs, self.make) = (name, processor, inputs, make)
        }
    }

    public var name: String
    public var nodes: [Node]

    public init(name: String, nodes: [Node]) {
        self.name = name
        self.nodes = nodes
    }
}

/// Why a node network cannot be pulled: the node at fault (an index in
/// `NodeNetworkConfig.nodes`, nil for the network as a whole) and what was
/// expected.
///
/// Threading: a value; any thread.
public struct NetworkRefusal: Error, Sendable, CustomStringConvertible {
    public var node: Int?
    public var message: String

    public init(node: Int?, _ message: String) {
        self.node = node
        self.message = message
    }

    public var description: String { message }
}
