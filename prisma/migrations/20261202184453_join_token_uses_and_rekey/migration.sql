-- AlterTable
ALTER TABLE "JoinToken" ADD COLUMN     "maxUses" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN     "rekeyNodeId" UUID;

-- AddForeignKey
ALTER TABLE "JoinToken" ADD CONSTRAINT "JoinToken_rekeyNodeId_fkey" FOREIGN KEY ("rekeyNodeId") REFERENCES "Node"("id") ON DELETE CASCADE ON UPDATE CASCADE;
