// The handler calls of a VM, found by the id that their `req` and `res` objects carry. Each
// call object has a slot in an array for as long as it exists (pooled calls keep theirs), so
// starting and ending a call writes its id and nothing else. An id is the slot in its low 20
// bits and a serial number above them: an object that outlives its call finds nothing, even
// once the call object serves another request. Ids stay below 2^62: an object is its id
// shifted left by two (mw_pushobject), and the serial wraps only after 2^42 calls.

/// Calls by id, in slots their objects keep.
struct LuaCallTable {
    private static let slotBits = 20
    private static let slotMask = 1 << slotBits - 1
    private static let serialLimit = 1 << (62 - slotBits)

    private var slots: [LuaCall?] = []
    private var freeSlots: [Int] = []
    private var serial = 0
    /// Calls started and not ended.
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Gives a new call object its slot; false when a million call objects exist already.
    mutating func register(_ call: LuaCall) -> Bool {
        if let slot = freeSlots.popLast() {
            call.slot = slot
            slots[slot] = call
        } else {
            guard slots.count <= Self.slotMask else { return false }
            call.slot = slots.count
            slots.append(call)
        }
        return true
    }

    /// Frees the slot of a call object that is not kept for reuse.
    mutating func unregister(_ call: LuaCall) {
        guard slots[call.slot] === call else { return }
        slots[call.slot] = nil
        freeSlots.append(call.slot)
    }

    /// Gives a registered call a new id: the objects made with it find the call until `end`.
    mutating func start(_ call: LuaCall) {
        serial = serial + 1 == Self.serialLimit ? 1 : serial + 1
        call.id = serial << Self.slotBits | call.slot
        count += 1
    }

    /// Ends a call: its id finds nothing from now on.
    mutating func end(_ call: LuaCall) {
        guard call.id != 0 else { return }
        call.id = 0
        count -= 1
    }

    /// The calls started and not ended.
    var live: [LuaCall] { slots.compactMap { $0 }.filter { $0.id != 0 } }

    /// The live call with this id.
    subscript(id: Int) -> LuaCall? {
        let slot = id & Self.slotMask
        guard id != 0, slot < slots.count, let call = slots[slot], call.id == id else { return nil }
        return call
    }
}
